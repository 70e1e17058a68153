"""Generation: the backends (base.py: the one interface; llama_cpp.py, transformers_text.py,
openai_compatible.py, vlm.py; loading.py picks the configured one), what they read
(prompting.py, multimodal.py, followup.py) and what decides whether their answer stands
(evidence.py, citations.py). No module here imports app.answering, which composes them."""
