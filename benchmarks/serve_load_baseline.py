"""Baseline (b) of ``serve_load.py``: the FastAPI app a user writes without ``transferkit serve``: one predict per
request.

    SERVE_LOAD_RUN=RUN uvicorn serve_load_baseline:app --app-dir benchmarks --port 8001
"""

import os

from fastapi import FastAPI
from pydantic import BaseModel

import transferkit

model = transferkit.load(os.environ["SERVE_LOAD_RUN"])
app = FastAPI()


class Texts(BaseModel):
    texts: list[str]


@app.get("/health")
def health() -> dict:
    return {"status": "ok"}


@app.post("/predict")
def predict(request: Texts) -> dict:  # a plain def: FastAPI runs it in its thread pool, as users write it
    return {"predictions": [{"label": label} for label in model.predict(request.texts)]}
