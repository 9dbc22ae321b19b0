"""dockui's full-screen Textual interface. Stands on the engine; the engine never imports it."""
