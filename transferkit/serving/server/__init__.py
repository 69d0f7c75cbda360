"""``transferkit serve``: a saved run behind an HTTP API (FastAPI + uvicorn), with dynamic batching.

Needs the ``serve`` extra (``pip install 'transferkit[serve]'``); ``transferkit.serving`` itself does not.
"""

from transferkit.serving.server.app import create_app
from transferkit.serving.server.config import ServeConfig
from transferkit.serving.server.launch import serve

__all__ = ["ServeConfig", "create_app", "serve"]
