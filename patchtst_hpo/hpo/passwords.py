"""Storage passwords: kept out of every file and log. Only PostgreSQL has an out-of-band channel
(PGPASSWORD, ~/.pgpass) that jobs inherit, so a password in any other URL is refused."""

from __future__ import annotations

from patchtst_hpo.errors import ConfigError


def split_password(url: str | None) -> tuple[str | None, str | None]:
    """(the URL without its password, the password or None). Journal paths have none.

    Only PostgreSQL has a standard out-of-band channel (PGPASSWORD, ~/.pgpass) that every job inherits, so
    a password in any other URL is refused rather than copied into job folders.
    """
    if url is None or url.startswith("journal:") or "://" not in url:
        return url, None
    from sqlalchemy.engine import URL, make_url

    u = make_url(url)
    if u.password is None:
        return url, None
    if u.get_backend_name() != "postgresql":
        raise ConfigError(
            f"hydra.sweeper.storage={redact(url)}: a password in a {u.get_backend_name()} URL would be "
            f"copied into every job's folder; use the driver's option file (e.g. ?read_default_file=~/.my.cnf)"
        )
    public = URL.create(u.drivername, u.username, None, u.host, u.port, u.database, u.query)
    return public.render_as_string(hide_password=False), str(u.password)


def redact(url: str | None) -> str | None:
    """The URL as it may be printed or written: the password replaced by ***."""
    if url is None or url.startswith("journal:") or "://" not in url:
        return url
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL SQLAlchemy can parse: show the scheme only
        return url.split("://", 1)[0] + "://***"
