"""run_bounded's own failures: an unknown workload or option, a broker it cannot reach."""

import pytest

from workloads import WorkloadError, run_bounded


def test_it_names_the_known_workloads_when_asked_for_an_unknown_one(amqp_url, scratch_vhost):
    with pytest.raises(ValueError, match="no workload 'tea_party'; known: fibonacci"):
        run_bounded("tea_party", amqp_url, scratch_vhost, calls=1)


def test_it_refuses_an_option_the_workload_does_not_have(amqp_url, scratch_vhost):
    with pytest.raises(TypeError, match="farm_size"):
        run_bounded("fibonacci", amqp_url, scratch_vhost, calls=1, farm_size=3)


def test_it_reports_a_vhost_it_cannot_use(amqp_url):
    with pytest.raises(WorkloadError, match="fibonacci: cannot set up on the broker"):
        run_bounded("fibonacci", amqp_url, "warren-no-such-vhost", calls=1, timeout_s=5)
