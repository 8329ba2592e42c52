from .spatial import _peak as peak  # TEMP SHIM
