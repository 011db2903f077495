"""Memory components: caption store and memory banks."""
