"""`autodo demo`: a team of agents on six tasks, with a scripted model."""
