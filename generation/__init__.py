"""Model loading, prompt building (chat memory) and the streaming engine."""
