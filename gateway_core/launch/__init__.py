"""How stdio servers are started as the person's shell would start them: the environment and the command."""
