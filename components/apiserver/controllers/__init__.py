"""The controllers kube-controller-manager and kube-scheduler run, in the apiserver's process."""

from __future__ import annotations

from components.apiserver.controllers.base import Controller, run
from components.apiserver.controllers.daemonsets import DaemonSetController
from components.apiserver.controllers.deployments import DeploymentController
from components.apiserver.controllers.endpoints import EndpointsController
from components.apiserver.controllers.gc import GarbageCollector
from components.apiserver.controllers.namespaces import NamespaceController
from components.apiserver.controllers.scheduler import Scheduler
from components.apiserver.registry import Registry

__all__ = ["Controller", "run", "all_controllers"]


def all_controllers(registry: Registry) -> list[Controller]:
    return [NamespaceController(registry), DeploymentController(registry), DaemonSetController(registry),
            Scheduler(registry), EndpointsController(registry), GarbageCollector(registry)]
