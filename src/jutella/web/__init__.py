"""HTTP: routes, templates and the static widget and console."""
