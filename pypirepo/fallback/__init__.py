"""What a proxy repository does with its upstream, beyond asking it (pypirepo.upstream):
its settings (config.py), the pages it keeps and revalidates (pages.py), the first
downloads it fetches, verifies and stores (fetcher.py), and the threads that do that work
without slowing the requests it serves (background.py). The policy that puts them
together is the proxy repository itself (pypirepo.repositories.proxy)."""
