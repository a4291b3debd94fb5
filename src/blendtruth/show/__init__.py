"""Pictures to look at: a contact sheet per model and a static HTML gallery of a dataset."""
