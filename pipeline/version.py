"""The installed package version."""
from importlib import metadata


def package_version() -> str:
    """``cvpipe``'s version, or ``"0+unknown"`` when running from an uninstalled tree."""
    try:
        return metadata.version("cvpipe")
    except metadata.PackageNotFoundError:
        return "0+unknown"
