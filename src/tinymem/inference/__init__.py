"""Online prediction on a user's own videos: streaming decode, person boxes, rendering, outputs."""
