"""Alembic environment: runs on the connection jutella hands over
(``Database.migrate``), or, for ``alembic revision --autogenerate`` during
development, on the database the settings name."""

from alembic import context

from jutella.store.models import Base

config = context.config
target_metadata = Base.metadata


def include_object(obj, name, type_, reflected, compare_to) -> bool:
    # the FTS5 index and its shadow tables are made by hand in 0002
    return not (type_ == "table" and name and name.startswith("chat_event_fts"))


def run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        include_object=include_object,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    run(connection)
else:  # development: alembic -c ... revision --autogenerate
    import asyncio

    from jutella.settings import load_settings
    from jutella.store.db import create_engine

    async def _main() -> None:
        engine = create_engine(load_settings().sqlalchemy_url)
        async with engine.begin() as conn:
            await conn.run_sync(run)
        await engine.dispose()

    asyncio.run(_main())
