# Loupe's app image: Streamlit on port 8501, CPU-only PyTorch (no CUDA wheels, ~2 GB smaller).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN useradd --create-home --uid 10001 loupe
WORKDIR /app

# Dependencies first, so code changes do not reinstall them. The PyTorch CPU index serves
# torch as `X.Y.Z+cpu`, which satisfies requirements.txt's `torch==X.Y.Z` and wins over PyPI's
# CUDA build.
COPY requirements.txt .
RUN pip install --extra-index-url https://download.pytorch.org/whl/cpu -r requirements.txt

COPY --chown=loupe:loupe . .
RUN mkdir -p /data && chown loupe:loupe /data

USER loupe
ENV LOUPE_DATA_DIR=/data \
    HF_HUB_OFFLINE=1 \
    STREAMLIT_SERVER_HEADLESS=true \
    STREAMLIT_BROWSER_GATHER_USAGE_STATS=false
# Export the bundled embedding model to ONNX now, not on the first question of every container.
RUN python -c "from core.config import Settings; from core.embeddings import get_embeddings; get_embeddings(Settings())"
EXPOSE 8501

HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://localhost:8501/_stcore/health', timeout=4)"]

CMD ["streamlit", "run", "app.py", "--server.port", "8501", "--server.address", "0.0.0.0"]
