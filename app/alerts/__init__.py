"""Alerts that reach people: Alertmanager's configuration, its check, and the OCI Notifications relay.

* `config`         the Alertmanager configuration rendered from the settings (receivers, grouping,
                   inhibition), or the user's own file.
* `amtool`         `amtool check-config` before anything starts, its output scrubbed of secrets.
* `message`        an Alertmanager webhook notification turned into a Notifications title and body.
* `publisher`      publishes that message to the OCI Notifications topic with the proxy's signer.
* `route`          the proxy's loopback-only `POST /alerts/oci-notifications` route.
* `test_alert`     `aqua-metrics test-alert`: one test notification through every receiver.
"""
