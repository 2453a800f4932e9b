# Two storage accounts, so that each identity can reach only what it needs:
#
# - "app": queues `events`, `events-poison`, `control` and table `servers`. The Spin components
#   sign with SharedKey (they cannot use managed identity), so shared keys stay enabled here.
#   The VM never gets this account's key: it sends to `events` and reads `control` with Entra
#   tokens from its managed identity (queue-scoped role assignments in identity.tf).
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

  # No blobs are used; soft delete still guards against a mistaken delete.
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
}

resource "azurerm_storage_share" "worlds" {
  name               = "worlds"
  storage_account_id = azurerm_storage_account.world.id
  quota              = var.world_share_quota_gb
  enabled_protocol   = "SMB"
  access_tier        = "TransactionOptimized"
}

# The world share cannot be deleted through Resource Manager (`terraform destroy`, a replacing
# change, the portal) while this lock exists; Terraform deletes the share before its account, so
# a destroy stops here too. The lock is on the share, not on the account, so that role
# assignments on the account (the VM's key reader) can still be replaced. Remove it on purpose.
resource "azurerm_management_lock" "world" {
  name       = "keep-the-world"
  scope      = azurerm_storage_share.worlds.id
  lock_level = "CanNotDelete"
  notes      = "Holds the Valheim world. Remove this lock on purpose before deleting the share or its account."
}
