"""Several replicas behind one deployment endpoint: tell them apart, remember them, merge them.

The forwarding path uses it like this, per scrape of target `t` (issue 11):

    tracker = trackers[t.name]            # one ReplicaTracker per target, for the process' life
                                          # (max_retained_bytes=SCRAPE_BODY_SIZE_LIMIT)
    result = await gather(
        fetch,                            # one signed GET of t's URL -> FetchedPage(raw bytes,
                                          # content-type, content-encoding); raise FetchFailed(x)
        tracker,
        deadline_seconds=deadline,        # Forwarder.deadline_for(X-Prometheus-Scrape-Timeout)
        max_fetches=suggested_fetch_cap(tracker.expected(instance_count, time.monotonic())),
        max_unpacked_bytes=limit,         # SCRAPE_BODY_SIZE_LIMIT: each page, and all merged
        instance_count=instance_count,    # from discovery when known, else None
        concurrency=1,                    # fetches at once; >1 shortens scrapes of many replicas
    )
    # answer result.body with Content-Type result.content_type and, if set, Content-Encoding
    # result.content_encoding; count result.fetches and result.replicas_served. MergedTooLarge
    # (an UnpackedTooLarge): refuse the scrape as oversized.

`exposition` is the line-level text surgery, `tracker` the memory between scrapes, `gather` the
fetch loop; none of them imports the rest of app/ except `app.unpacked_size`, the one capped way
to inflate a page.
"""
