# Two storage accounts, so that each identity can reach only what it needs:
#
# - "app": queues `events`, `events-poison`, `commands`, `control`, table `servers`, and the
#   private blob container `agent` with the VM's agent binary. The Spin components sign with
#   SharedKey (they cannot use managed identity), so shared keys stay enabled here. The VM never
#   gets this account's key: with Entra tokens from its managed identity it sends to `events`,
#   takes from `control` and reads the agent blob (role assignments scoped to exactly those, in
#   identity.tf). It has no role on `commands`, which only the app writes and reads: slash
#   commands reach the game server from Discord and from nowhere else.
# - "world": only the file share with the Valheim world, mounted by the VM over SMB 3. Linux
#   SMB mounts need the account key (Azure Files has no managed-identity SMB mount for Linux
#   VMs), so the VM may list this account's keys (custom role in identity.tf) and the key it
#   gets opens the world share and nothing else. Its firewall admits the VM subnet only.

resource "azurerm_storage_account" "app" {
  name                = "${var.name_prefix}app${var.name_suffix}"
  resource_group_name = azurerm_resource_group.main.name
  location            = azurerm_resource_group.main.location
  tags                = var.tags

  account_kind             = "StorageV2"
  account_tier             = "Standard"
  account_replication_type = var.storage_replication_type
  access_tier              = "Hot"

  min_tls_version                 = "TLS1_2"
  https_traffic_only_enabled      = true
  allow_nested_items_to_be_public = false
  public_network_access_enabled   = true
  # The Spin components sign queue and table requests with SharedKey.
  shared_access_key_enabled         = true
  default_to_oauth_authentication   = false
  cross_tenant_replication_enabled  = false
  infrastructure_encryption_enabled = true

  # The Spin host's egress addresses are not known in advance (Fermyon/Akamai Functions,
  # SpinKube), so the queue and table endpoints stay reachable from the internet; every request
  # still needs the key or an Entra token.
  network_rules {
    default_action = "Allow"
    bypass         = ["AzureServices"]
  }

  sas_policy {
    expiration_period = "01.00:00:00"
    expiration_action = "Log"
  }

  # Only the agent binary lives here (container `agent`); soft delete guards against a mistaken
  # delete.
  blob_properties {
    delete_retention_policy {
      days = 7
    }
    container_delete_retention_policy {
      days = 7
    }
  }
}

resource "azurerm_storage_queue" "events" {
  name               = "events"
  storage_account_id = azurerm_storage_account.app.id
}

resource "azurerm_storage_queue" "events_poison" {
  name               = "events-poison"
  storage_account_id = azurerm_storage_account.app.id
}

# Slash commands, put by the interactions component and taken by reactions. Only the app's key
# reaches it; the VM has no role here, so nothing on the VM can forge a player's command.
resource "azurerm_storage_queue" "commands" {
  name               = "commands"
  storage_account_id = azurerm_storage_account.app.id
}

# Control messages for the agent (DESIGN: /stop asks the agent to save and stop the game, "a
# control message the agent picks up with its own identity"). The app puts, the VM takes.
resource "azurerm_storage_queue" "control" {
  name               = "control"
  storage_account_id = azurerm_storage_account.app.id
}

resource "azurerm_storage_table" "servers" {
  name               = "servers"
  storage_account_id = azurerm_storage_account.app.id
}

resource "azurerm_storage_account" "world" {
  name                = "${var.name_prefix}wld${var.name_suffix}"
  resource_group_name = azurerm_resource_group.main.name
  location            = azurerm_resource_group.main.location
  tags                = var.tags

  account_kind             = "StorageV2"
  account_tier             = "Standard"
  account_replication_type = var.storage_replication_type
  access_tier              = "Hot"

  min_tls_version                   = "TLS1_2"
  https_traffic_only_enabled        = true
  allow_nested_items_to_be_public   = false
  public_network_access_enabled     = true
  shared_access_key_enabled         = true
  cross_tenant_replication_enabled  = false
  infrastructure_encryption_enabled = true

  # Only the VM subnet (service endpoint Microsoft.Storage) reaches the share. Terraform
  # manages the account through Resource Manager only (provider feature
  # storage.data_plane_available = false), so this does not block plans.
  network_rules {
    default_action             = "Deny"
    bypass                     = ["AzureServices"]
    virtual_network_subnet_ids = [azurerm_subnet.vm.id]
  }

  share_properties {
    # SMB 3.1.1 with AES encryption only; Kerberos is not used (key-based mount).
    smb {
      versions                        = ["SMB3.1.1"]
      authentication_types            = ["NTLMv2"]
      channel_encryption_type         = ["AES-128-GCM", "AES-256-GCM"]
      kerberos_ticket_encryption_type = ["AES-256"]
    }

    # A deleted share (and the world in it) stays recoverable.
    retention_policy {
      days = var.world_share_soft_delete_days
    }
  }

  sas_policy {
    expiration_period = "01.00:00:00"
    expiration_action = "Log"
  }

  # No blobs are used; soft delete still guards against a mistaken delete.
  blob_properties {
    delete_retention_policy {
      days = 7
    }
    container_delete_retention_policy {
      days = 7
    }
  }

  # The world lives here. A plan that would delete or replace this account fails instead; the
  # management lock below does not stop Terraform (README.md, "Keeping the world").
  lifecycle {
    prevent_destroy = true
  }
}

resource "azurerm_storage_share" "worlds" {
  name               = "worlds"
  storage_account_id = azurerm_storage_account.world.id
  quota              = var.world_share_quota_gb
  enabled_protocol   = "SMB"
  access_tier        = "TransactionOptimized"

  # The Valheim world itself: never deleted or replaced by a plan.
  lifecycle {
    prevent_destroy = true
  }
}

# The world share cannot be deleted through Resource Manager (the portal, the az CLI, a script)
# while this lock exists. It is a second line for whatever is not Terraform: Terraform deletes a
# locked resource's lock first when it destroys both, so `prevent_destroy` above is what stops a
# plan. The lock is on the share, not on the account, so that role assignments on the account
# (the VM's key reader) can still be replaced. Remove it on purpose.
resource "azurerm_management_lock" "world" {
  name       = "keep-the-world"
  scope      = azurerm_storage_share.worlds.id
  lock_level = "CanNotDelete"
  notes      = "Holds the Valheim world. Remove this lock on purpose before deleting the share or its account."
}

# The agent binary (scripts/build-agent), uploaded by Terraform into a private container. The VM
# downloads it with its managed identity (Storage Blob Data Reader on this container only) and
# checks the SHA-256 from its custom data, so the boot needs nothing from a third party. The blob's
# name carries the hash: a new build is a new blob, and a VM never meets a half-replaced one.
locals {
  agent_sha256 = filesha256(var.agent_binary_path)
}

resource "azurerm_storage_container" "agent" {
  name                  = "agent"
  storage_account_id    = azurerm_storage_account.app.id
  container_access_type = "private"
}

resource "azurerm_storage_blob" "agent" {
  name                 = "heimdall-agent-${substr(local.agent_sha256, 0, 16)}"
  storage_container_id = azurerm_storage_container.agent.id
  type                 = "Block"
  source               = var.agent_binary_path
  content_md5          = filemd5(var.agent_binary_path)
  content_type         = "application/octet-stream"
}
