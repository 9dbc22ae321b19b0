"""Images: references, registries (pull, push, auth), manifests, layer extraction and the on-disk store.

May import `engine.kernel`, `engine.util`, `engine.config`, `engine.errors`. Never reads container
records: the container side tells the store which images and layers are in use.
"""
