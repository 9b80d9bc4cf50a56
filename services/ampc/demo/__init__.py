"""The demo: a generated scenario streamed through the national inboxes, as the nations would."""
