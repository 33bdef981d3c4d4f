"""Several replicas behind one deployment endpoint: tell them apart, remember them, merge them."""
