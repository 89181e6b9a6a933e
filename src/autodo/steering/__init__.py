"""Messages from the person to a running agent: steer, queue or interrupt."""
