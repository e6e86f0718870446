"""Supervised heads on model features: probes, evaluation, sequence classifiers, variant heads."""
