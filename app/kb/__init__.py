"""The knowledge base's components, one responsibility each; app.service.KnowledgeBase is their façade."""
