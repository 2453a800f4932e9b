# Identities and least-privilege role assignments.
#
# The VM: the scale set's user-assigned managed identity (vmss.tf; azurerm's Flexible scale set
# takes no system-assigned one). What it may do:
#   - put messages on the `events` queue                (Storage Queue Data Message Sender, queue scope)
#   - take and delete messages on the `control` queue   (Storage Queue Data Message Processor, queue scope)
#   - read the agent binary                             (Storage Blob Data Reader, scope: the `agent` container)
#   - read the secrets of the dedicated Key Vault       (Key Vault Secrets User, vault scope: the
#                                                        vault holds only the VM's two boot secrets)
#   - list the keys of the *world* storage account      (custom role below; the key opens the world
#                                                        share, the only thing in that account)
# Nothing on `commands` or `events-poison`, nothing on the table: the VM cannot forge a slash
# command or touch the game servers' state. The agent authenticates to the queues and the blob
# with Entra tokens from IMDS (resource https://storage.azure.com/), so HEIMDALL_STORAGE_KEY is
# not needed and not provided.
#
# Custom role definitions are defined at resource-group scope (or subscription scope for the
# operation reader: Azure accepts management groups, subscriptions and resource groups as
# assignable scopes); each *assignment* is what narrows the grant to one resource.
#
# The app (the scaler's service principal, created outside Terraform, object id in a variable).
# Its actions are exactly those of the ARM calls the scaler makes, listed once in code
# (crates/azure-arm, `SCALER_CALLS`, and `SCALE_OUT_LINKED_ACTIONS` for the checks Azure makes on
# a scale-out); infra/policy holds these roles to that list:
#   - read and write (capacity, later the size) the scale set: a custom role on the scale set only
#   - read VMs, NICs and public IPs in the resource group: a Flexible scale set's VMs and their
#     NICs and IPs are resources of the group, not children of the set, and their names are not
#     known in advance; the group holds only Heimdall's resources
#   - subnets/join/action on the VM subnet and userAssignedIdentities/assign/action on the VM's
#     identity: Azure checks both on the caller (LinkedAuthorizationFailed otherwise) whenever a
#     scale-set write creates VMs that join that subnet and carry that identity
#   - optionally Microsoft.Compute/locations/operations/read at subscription scope, because the
#     Azure-AsyncOperation URL of a scale operation lives under
#     /subscriptions/{id}/providers/Microsoft.Compute/locations/{region}/operations/{id}

locals {
  vm_principal_id = azurerm_user_assigned_identity.vm.principal_id
}

# --- the VM ----------------------------------------------------------------------------------

resource "azurerm_role_assignment" "vm_events_sender" {
  scope                = azurerm_storage_queue.events.id
  role_definition_name = "Storage Queue Data Message Sender"
  principal_id         = local.vm_principal_id
  principal_type       = "ServicePrincipal"
}

resource "azurerm_role_assignment" "vm_control_processor" {
  scope                = azurerm_storage_queue.control.id
  role_definition_name = "Storage Queue Data Message Processor"
  principal_id         = local.vm_principal_id
  principal_type       = "ServicePrincipal"
}

resource "azurerm_role_assignment" "vm_agent_reader" {
  scope                = azurerm_storage_container.agent.id
  role_definition_name = "Storage Blob Data Reader"
  principal_id         = local.vm_principal_id
  principal_type       = "ServicePrincipal"
}

resource "azurerm_role_assignment" "vm_kv_secrets_user" {
  scope                = azurerm_key_vault.main.id
  role_definition_name = "Key Vault Secrets User"
  principal_id         = local.vm_principal_id
  principal_type       = "ServicePrincipal"
}

resource "azurerm_role_definition" "world_share_key_reader" {
  name        = "${var.name_prefix}-${var.name_suffix}-${var.server_id}-world-share-key-reader"
  scope       = azurerm_resource_group.main.id
  description = "Heimdall VM: list the keys of the world storage account to mount its SMB share."

  permissions {
    actions = [
      "Microsoft.Storage/storageAccounts/listkeys/action",
    ]
    not_actions = []
  }

  assignable_scopes = [azurerm_resource_group.main.id]
}

resource "azurerm_role_assignment" "vm_world_share_key" {
  scope              = azurerm_storage_account.world.id
  role_definition_id = azurerm_role_definition.world_share_key_reader.role_definition_resource_id
  principal_id       = local.vm_principal_id
  principal_type     = "ServicePrincipal"
}

# --- the app's service principal -------------------------------------------------------------

resource "azurerm_role_definition" "scaler" {
  name        = "${var.name_prefix}-${var.name_suffix}-${var.server_id}-scaler"
  scope       = azurerm_resource_group.main.id
  description = "Heimdall scaler: read one VM scale set and set its capacity (and size)."

  permissions {
    actions = [
      "Microsoft.Compute/virtualMachineScaleSets/read",
      "Microsoft.Compute/virtualMachineScaleSets/write",
    ]
    not_actions = []
  }

  assignable_scopes = [azurerm_resource_group.main.id]
}

resource "azurerm_role_assignment" "app_scaler" {
  scope              = azurerm_orchestrated_virtual_machine_scale_set.valheim.id
  role_definition_id = azurerm_role_definition.scaler.role_definition_resource_id
  principal_id       = var.app_principal_object_id
  principal_type     = "ServicePrincipal"
}

resource "azurerm_role_definition" "scaler_instance_reader" {
  name        = "${var.name_prefix}-${var.name_suffix}-${var.server_id}-scaler-instance-reader"
  scope       = azurerm_resource_group.main.id
  description = "Heimdall scaler: find the game VM of the Flexible scale set, its NIC and its public IP."

  permissions {
    actions = [
      "Microsoft.Compute/virtualMachines/read",
      "Microsoft.Network/networkInterfaces/read",
      "Microsoft.Network/publicIPAddresses/read",
    ]
    not_actions = []
  }

  assignable_scopes = [azurerm_resource_group.main.id]
}

resource "azurerm_role_assignment" "app_instance_reader" {
  scope              = azurerm_resource_group.main.id
  role_definition_id = azurerm_role_definition.scaler_instance_reader.role_definition_resource_id
  principal_id       = var.app_principal_object_id
  principal_type     = "ServicePrincipal"
}

resource "azurerm_role_definition" "scaler_subnet_join" {
  name        = "${var.name_prefix}-${var.name_suffix}-${var.server_id}-scaler-subnet-join"
  scope       = azurerm_resource_group.main.id
  description = "Heimdall scaler: let scale-set writes place VMs in the VM subnet (linked access check)."

  permissions {
    actions = [
      "Microsoft.Network/virtualNetworks/subnets/join/action",
    ]
    not_actions = []
  }

  assignable_scopes = [azurerm_resource_group.main.id]
}

resource "azurerm_role_assignment" "app_subnet_join" {
  scope              = azurerm_subnet.vm.id
  role_definition_id = azurerm_role_definition.scaler_subnet_join.role_definition_resource_id
  principal_id       = var.app_principal_object_id
  principal_type     = "ServicePrincipal"
}

resource "azurerm_role_definition" "scaler_identity_assign" {
  name        = "${var.name_prefix}-${var.name_suffix}-${var.server_id}-scaler-identity-assign"
  scope       = azurerm_resource_group.main.id
  description = "Heimdall scaler: let scale-set writes create VMs that carry the VM identity (linked access check)."

  permissions {
    actions = [
      "Microsoft.ManagedIdentity/userAssignedIdentities/assign/action",
    ]
    not_actions = []
  }

  assignable_scopes = [azurerm_resource_group.main.id]
}

resource "azurerm_role_assignment" "app_identity_assign" {
  scope              = azurerm_user_assigned_identity.vm.id
  role_definition_id = azurerm_role_definition.scaler_identity_assign.role_definition_resource_id
  principal_id       = var.app_principal_object_id
  principal_type     = "ServicePrincipal"
}

resource "azurerm_role_definition" "operation_status_reader" {
  count       = var.grant_operation_status_read ? 1 : 0
  name        = "${var.name_prefix}-${var.name_suffix}-${var.server_id}-compute-operation-reader"
  scope       = data.azurerm_subscription.current.id
  description = "Heimdall scaler: poll Compute Azure-AsyncOperation status URLs (no resource data)."

  permissions {
    actions = [
      "Microsoft.Compute/locations/operations/read",
    ]
    not_actions = []
  }

  assignable_scopes = [data.azurerm_subscription.current.id]
}

resource "azurerm_role_assignment" "app_operation_status_reader" {
  count              = var.grant_operation_status_read ? 1 : 0
  scope              = data.azurerm_subscription.current.id
  role_definition_id = azurerm_role_definition.operation_status_reader[0].role_definition_resource_id
  principal_id       = var.app_principal_object_id
  principal_type     = "ServicePrincipal"
}
