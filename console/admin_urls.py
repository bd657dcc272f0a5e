"""Routes of creating queues and exchanges (operator) and of broker administration (admin)."""

from django.urls import path

from console.views import admin_broker, admin_policies, admin_users, admin_vhosts, creating

urlpatterns = [
    path("queues/new", creating.queue_new, name="queue_new"),
    path("exchanges/new", creating.exchange_new, name="exchange_new"),
    path("users/", admin_users.user_list, name="users"),
    path("users/<name:name>/", admin_users.user_detail, name="user"),
    path("users/<name:name>/update", admin_users.user_update, name="user_update"),
    path("users/<name:name>/delete", admin_users.user_delete, name="user_delete"),
    path("users/<name:name>/limits", admin_users.user_limits, name="user_limits"),
    path(
        "users/<name:name>/permissions",
        admin_users.user_permission_set,
        name="user_permission_set",
    ),
    path(
        "users/<name:name>/permissions/clear",
        admin_users.user_permission_clear,
        name="user_permission_clear",
    ),
    path(
        "users/<name:name>/topic-permissions",
        admin_users.user_topic_permission_set,
        name="user_topic_permission_set",
    ),
    path(
        "users/<name:name>/topic-permissions/clear",
        admin_users.user_topic_permission_clear,
        name="user_topic_permission_clear",
    ),
    path("administration/vhosts/", admin_vhosts.admin_vhost_list, name="admin_vhosts"),
    path(
        "administration/vhosts/<name:name>/",
        admin_vhosts.admin_vhost_detail,
        name="admin_vhost",
    ),
    path(
        "administration/vhosts/<name:name>/limits",
        admin_vhosts.admin_vhost_limits,
        name="admin_vhost_limits",
    ),
    path(
        "administration/vhosts/<name:name>/delete",
        admin_vhosts.admin_vhost_delete,
        name="admin_vhost_delete",
    ),
    path("policies/", admin_policies.policy_list, name="policies"),
    path("policies/new", admin_policies.policy_new, name="policy_new"),
    path(
        "policies/<slug:kind>/<name:vhost>/<name:name>/",
        admin_policies.policy_edit,
        name="policy_edit",
    ),
    path(
        "policies/<slug:kind>/<name:vhost>/<name:name>/delete",
        admin_policies.policy_delete,
        name="policy_delete",
    ),
    path("administration/cluster/", admin_broker.cluster, name="admin_cluster"),
    path("feature-flags/", admin_broker.feature_flags, name="feature_flags"),
    path(
        "feature-flags/<name:name>/enable",
        admin_broker.feature_flag_enable,
        name="feature_flag_enable",
    ),
    path("definitions/", admin_broker.definitions, name="definitions"),
    path("definitions/export", admin_broker.definitions_export, name="definitions_export"),
    path("definitions/import", admin_broker.definitions_import, name="definitions_import"),
    path(
        "definitions/import/apply",
        admin_broker.definitions_import_apply,
        name="definitions_import_apply",
    ),
    path(
        "definitions/import/discard",
        admin_broker.definitions_import_discard,
        name="definitions_import_discard",
    ),
]
