"""Loupe web app entry point. The full app (chat, review, documents, insights) is built on
`core.service.Loupe`; until then this page shows that the engine is up."""

import streamlit as st

from core.service import Loupe


@st.cache_resource
def loupe() -> Loupe:
    return Loupe()


st.set_page_config(page_title="Loupe", page_icon="🔎")
st.title("Loupe")
engine = loupe()
health = engine.store.health()
st.write(f"Vector store: **{health.backend}**, {health.chunks} chunks.")
st.write(f"Documents: **{len(engine.documents())}**. Use `python -m core ingest PATH` to add some.")
