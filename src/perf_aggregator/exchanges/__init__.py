"""Exchange connectors: one module per exchange behind ``base.ExchangeConnector``."""

import logging

# ccxt logs request headers (API keys) and response bodies (users' trades) at DEBUG.
# Logs carry no user data whatever level the operator picks, so ccxt is capped here.
logging.getLogger("ccxt").setLevel(logging.WARNING)
