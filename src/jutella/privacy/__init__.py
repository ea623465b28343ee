"""The register: the privacy notice, data-subject requests (find, access copy,
rectification, objection, restriction, erasure), the request log, retention."""
