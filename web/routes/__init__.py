"""The app's route modules, one blueprint each."""
