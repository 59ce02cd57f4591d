"""qabot: an offline Q&A bot over interview transcripts, answering with verbatim, cited quotes."""

__version__ = "0.1.0"
