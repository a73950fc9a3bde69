"""The comparison baseline: a FastAPI + redis-py service doing the cache-hit work of
GET /prices/latest the way the seed does it (validate the symbol, read the cached quote from
Redis, answer it as JSON). Written only for local/bench/compare.sh; not part of the service.
"""

import os
import re

import redis.asyncio as redis
from fastapi import FastAPI, HTTPException, Query
from fastapi.responses import Response

SYMBOL = re.compile(r"^[A-Z0-9][A-Z0-9.\-^=:]{0,14}$")
PREFIX = os.environ.get("BASELINE_PREFIX", "mdb_bench_baseline:")

app = FastAPI()
cache = redis.Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379"))


@app.get("/prices/latest")
async def latest(symbol: str = Query(...)):
    normalised = symbol.strip().upper()
    if not SYMBOL.match(normalised):
        raise HTTPException(status_code=400, detail="invalid symbol")
    quote = await cache.get(PREFIX + normalised)
    if quote is None:
        raise HTTPException(status_code=404, detail="not cached")
    return Response(content=quote, media_type="application/json")
