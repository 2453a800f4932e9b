# The game server: a Uniform spot scale set that the app scales between 0 and 1 instances.
# Every instance is new (spot eviction and scale-in delete it; the OS disk is ephemeral), so
# cloud-init (cloud-init.yaml) sets the VM up on every start. Only non-secret values go into
# custom data; the VM fetches its secrets at boot with its managed identity.

locals {
  vmss_name = "${var.name_prefix}-${var.server_id}-vmss"

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
    agent_download_url          = var.agent_download_url
    agent_sha256                = var.agent_sha256
  }
}

resource "azurerm_linux_virtual_machine_scale_set" "valheim" {
  name                = local.vmss_name
  resource_group_name = azurerm_resource_group.main.name
  location            = azurerm_resource_group.main.location
  tags                = var.tags

  sku       = var.vm_size
  instances = 0
  zones     = var.zones

  # Spot: the cheapest capacity; evicted VMs are deleted (nothing to pay while stopped), and
  # -1 means "never evict for price", only for capacity.
  priority        = "Spot"
  eviction_policy = "Delete"
  max_bid_price   = -1

  # No overprovisioning: an extra instance would boot, mount the world share and start a
  # second game server on the same world.
  overprovision          = false
  single_placement_group = true
  upgrade_mode           = "Manual"

  computer_name_prefix            = var.server_id
  admin_username                  = var.admin_username
  disable_password_authentication = true

  admin_ssh_key {
    username   = var.admin_username
    public_key = var.admin_ssh_public_key
  }

  custom_data = base64encode(templatefile("${path.module}/cloud-init.yaml", local.cloud_init_vars))

  source_image_reference {
    publisher = "Canonical"
    offer     = "ubuntu-24_04-lts"
    sku       = "server"
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

      # One public IP per instance: players join it, the scaler reads it (PROTOCOLS 4.6).
      public_ip_address {
        name                    = "pip"
        idle_timeout_in_minutes = 4
        public_ip_prefix_id     = var.public_ip_prefix_id
      }
    }
  }

  identity {
    type = "SystemAssigned"
  }

  secure_boot_enabled        = var.trusted_launch
  vtpm_enabled               = var.trusted_launch
  encryption_at_host_enabled = var.encryption_at_host

  # Nothing is installed through VM extensions; cloud-init does the setup.
  extension_operations_enabled = false

  dynamic "boot_diagnostics" {
    for_each = var.boot_diagnostics ? [1] : []
    content {
      storage_account_uri = null
    }
  }

  scale_in {
    rule                   = "Default"
    force_deletion_enabled = false
  }

  # Not configured on purpose:
  # - termination_notification: Azure raises Terminate only for deletes of regular VMs, not for
  #   spot instances (PROTOCOLS 4.8), so /stop asks the agent to save first instead.
  # - spot_restore: it would bring an evicted instance back by itself, behind the app's back;
  #   the app decides when to retry and on which size (var.vm_fallback_sizes).

  lifecycle {
    # The app scales the set (capacity 0/1); Terraform must not reset it.
    ignore_changes = [instances]

    precondition {
      condition     = var.agent_download_url == "" || var.agent_sha256 != ""
      error_message = "agent_sha256 is required when agent_download_url is set."
    }
  }
}
