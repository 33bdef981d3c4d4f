"""Fleet discovery: the model deployments of a compartment, found with the Data Science API.

`listing` asks the API (blocking, SDK), `deployments` maps its answers to plain data, `naming`
gives each deployment a readable unique name and its labels, `fleet` merges them with the explicit
targets, `poller` keeps the listing current off the event loop, and `inventory` renders what was
found on the proxy's /metrics.
"""
