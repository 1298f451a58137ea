"""Channel adapters: each turns a provider's payload into an InboundMessage and renders replies."""
