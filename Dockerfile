# mmkb application image (CPU). Build: docker compose build
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MMKB_DATA_DIR=/data MMKB_HOST=0.0.0.0 MMKB_PORT=7860
RUN apt-get update && apt-get install -y --no-install-recommends build-essential cmake libgl1 libglib2.0-0 \
    tesseract-ocr tesseract-ocr-eng tesseract-ocr-chi-sim \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/mmkb
COPY requirements.lock pyproject.toml README.md ./
# torch first and pinned to the CPU wheel; llama.cpp built for portable x86-64 (no AMX/native flags).
RUN pip install --no-cache-dir torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu \
    && CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON" \
       pip install --no-cache-dir -r requirements.lock
COPY app ./app
COPY ingest ./ingest
COPY retrieval ./retrieval
COPY rerank ./rerank
COPY ui ./ui
COPY samples ./samples
RUN pip install --no-cache-dir --no-deps -e .[postgres] && pip install --no-cache-dir "psycopg[binary]==3.2.13"
VOLUME /data
EXPOSE 7860
CMD ["kb", "serve"]
