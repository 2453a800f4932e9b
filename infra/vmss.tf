# The game server: a spot scale set in Flexible orchestration that the app scales between 0 and
# 1 instances. Every instance is new (spot eviction and scale-in delete it; the OS disk is
# ephemeral), so cloud-init (cloud-init.yaml) sets the VM up on every start. Only non-secret values
# go into custom data; the VM fetches its secrets at boot with its managed identity.
#
# Why Flexible and not Uniform: each VM gets its own public IP, and Azure creates only Standard
# public IPs now (Basic was retired for new IPs on 2025-03-31). The Compute API takes the per-VM
# IP's SKU only in Flexible orchestration (azurerm: `sku_name` on `public_ip_address`), and such an
# IP exists, and bills, only while its VM exists. README.md ("Public IP") weighs this against a
# Standard public IP prefix, which bills every hour whether a VM runs or not.

locals {
  vmss_name = "${var.name_prefix}-${var.server_id}-vmss"

  # The per-VM public IP's SKU; Flexible orchestration is what lets the API take one.
  public_ip_sku = "Standard_Regional"

  # Values for cloud-init.yaml. NOTHING SECRET HERE: custom data is readable by anyone who can
  # read the scale set's model. Secrets are fetched at boot (see keyvault.tf).
  cloud_init_vars = {
    server_id                   = var.server_id
    server_name                 = var.server_name
    world_name                  = var.world_name
    valheim_image               = var.valheim_image
    queue_endpoint              = trimsuffix(azurerm_storage_account.app.primary_queue_endpoint, "/")
    storage_account             = azurerm_storage_account.app.name
    events_queue                = azurerm_storage_queue.events.name
    control_queue               = azurerm_storage_queue.control.name
    kick_url                    = var.kick_url
    key_vault_uri               = trimsuffix(azurerm_key_vault.main.vault_uri, "/")
    app_secret_name             = local.app_secret_name
    server_password_secret_name = local.server_password_secret
    world_account_id            = azurerm_storage_account.world.id
    world_account_name          = azurerm_storage_account.world.name
    world_file_host             = azurerm_storage_account.world.primary_file_host
    world_share_name            = azurerm_storage_share.worlds.name
    agent_blob_url              = azurerm_storage_blob.agent.url
    agent_sha256                = local.agent_sha256
  }
}

# The VM's identity. azurerm's Flexible scale set takes user-assigned identities only. Being a
# resource of its own, it exists before the scale set, so its role assignments (identity.tf) are
# in place before the first VM boots. The VM has this one identity, so IMDS needs no client_id.
resource "azurerm_user_assigned_identity" "vm" {
  name                = "${var.name_prefix}-${var.server_id}-vm-identity"
  resource_group_name = azurerm_resource_group.main.name
  location            = azurerm_resource_group.main.location
  tags                = var.tags
}

resource "azurerm_orchestrated_virtual_machine_scale_set" "valheim" {
  name                = local.vmss_name
  resource_group_name = azurerm_resource_group.main.name
  location            = azurerm_resource_group.main.location
  tags                = var.tags

  sku_name  = var.vm_size
  instances = 0
  zones     = var.zones

  # Flexible orchestration spreads VMs over fault domains; one VM needs one.
  platform_fault_domain_count = 1

  # Spot: the cheapest capacity; evicted VMs are deleted (nothing to pay while stopped), and
  # -1 means "never evict for price", only for capacity.
  priority        = "Spot"
  eviction_policy = "Delete"
  max_bid_price   = -1

  upgrade_mode = "Manual"

  os_profile {
    custom_data = base64encode(templatefile("${path.module}/cloud-init.yaml", local.cloud_init_vars))

    linux_configuration {
      computer_name_prefix            = var.server_id
      admin_username                  = var.admin_username
      disable_password_authentication = true

      admin_ssh_key {
        username   = var.admin_username
        public_key = var.admin_ssh_public_key
      }
    }
  }

  # Ubuntu 22.04 LTS (Gen2), not 24.04: a graceful `docker stop` does not save the world on 24.04
  # with Ubuntu's docker.io (AppArmor refuses the stop signal, so Docker kills the game after the
  # timeout); README.md ("The VM") has the details.
  source_image_reference {
    publisher = "Canonical"
    offer     = "0001-com-ubuntu-server-jammy"
    sku       = "22_04-lts-gen2"
    version   = "latest"
  }

  os_disk {
    caching              = "ReadOnly"
    storage_account_type = "Standard_LRS"

    diff_disk_settings {
      option    = "Local"
      placement = var.ephemeral_os_disk_placement
    }
  }

  network_interface {
    name    = "nic"
    primary = true

    ip_configuration {
      name      = "ipconfig"
      primary   = true
      subnet_id = azurerm_subnet.vm.id

      # One Standard public IP per VM: players join it, the scaler reads it. It is created
      # with the VM and deleted with it.
      public_ip_address {
        name                    = "pip"
        sku_name                = local.public_ip_sku
        idle_timeout_in_minutes = 4
      }
    }
  }

  identity {
    type         = "UserAssigned"
    identity_ids = [azurerm_user_assigned_identity.vm.id]
  }

  encryption_at_host_enabled = var.encryption_at_host

  # Nothing is installed through VM extensions; cloud-init does the setup.
  extension_operations_enabled = false

  dynamic "boot_diagnostics" {
    for_each = var.boot_diagnostics ? [1] : []
    content {
      storage_account_uri = null
    }
  }

  # Not configured on purpose:
  # - termination_notification: Azure raises Terminate only for deletes of regular VMs, not for
  #   spot instances (PROTOCOLS 4.8), so /stop asks the agent to save first instead.
  # - priority_mix and spot restore: the app decides when to retry and on which size
  #   (var.vm_fallback_sizes).

  lifecycle {
    # The app scales the set (capacity 0/1) and, when a spot size has no capacity, moves it to
    # the next of var.vm_fallback_sizes: Terraform must reset neither.
    ignore_changes = [instances, sku_name]
  }

  # The VM's roles must exist before a VM can boot and use them.
  depends_on = [
    azurerm_role_assignment.vm_events_sender,
    azurerm_role_assignment.vm_control_processor,
    azurerm_role_assignment.vm_kv_secrets_user,
    azurerm_role_assignment.vm_world_share_key,
    azurerm_role_assignment.vm_agent_reader,
  ]
}
