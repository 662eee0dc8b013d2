"""The LLM client (the anthropic SDK behind the LLMClient port) and the cost of a call."""
