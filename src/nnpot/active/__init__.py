"""Active learning: oracles, batch selection and the explore-label-retrain loop."""
