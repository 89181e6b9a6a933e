"""The inbox: questions, hand-offs and reviews waiting on the person."""
