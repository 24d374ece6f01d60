"""What other tools read: LoRA export and PNG metadata."""
