"""Running the whole system on one machine: embedded services, local eventing, simulated market.

Nothing in this package is deployed; the functions never import it.
"""
