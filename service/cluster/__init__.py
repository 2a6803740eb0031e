"""streetwatch on a Ray cluster: camera pipelines as actors spread over the nodes (`service.cluster.engine`,
`service.cluster.actors`), selected by the settings' ``engine`` section (`service.cluster.settings`).

Importing this package does not import Ray: only the engine and the actors do, when the Ray engine is chosen.
"""
