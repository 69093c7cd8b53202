"""Chat models arrive with the chat pages issue."""
