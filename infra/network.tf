resource "azurerm_resource_group" "main" {
  name     = "${var.name_prefix}-${var.server_id}-rg"
  location = var.location
  tags     = var.tags
}

resource "azurerm_virtual_network" "main" {
  name                = "${var.name_prefix}-vnet"
  resource_group_name = azurerm_resource_group.main.name
  location            = azurerm_resource_group.main.location
  address_space       = [var.vnet_address_space]
  tags                = var.tags
}

resource "azurerm_subnet" "vm" {
  name                 = "vm"
  resource_group_name  = azurerm_resource_group.main.name
  virtual_network_name = azurerm_virtual_network.main.name
  address_prefixes     = [cidrsubnet(var.vnet_address_space, 2, 0)]

  # The world share (SMB) and the Key Vault admit this subnet through service endpoints.
  service_endpoints = ["Microsoft.Storage", "Microsoft.KeyVault"]

  # The VM has its own public IP; nothing else may leave through Azure's implicit outbound.
  default_outbound_access_enabled = false
}

# Rules are separate resources (not inline blocks): mixing the two makes Terraform fight itself.
resource "azurerm_network_security_group" "vm" {
  name                = "${var.name_prefix}-vm-nsg"
  resource_group_name = azurerm_resource_group.main.name
  location            = azurerm_resource_group.main.location
  tags                = var.tags
}

# Valheim: 2456 game, 2457 query, 2458 reserved by the server.
resource "azurerm_network_security_rule" "valheim_udp" {
  name                        = "allow-valheim-udp"
  resource_group_name         = azurerm_resource_group.main.name
  network_security_group_name = azurerm_network_security_group.vm.name
  priority                    = 100
  direction                   = "Inbound"
  access                      = "Allow"
  protocol                    = "Udp"
  source_address_prefix       = "Internet"
  source_port_range           = "*"
  destination_address_prefix  = "*"
  destination_port_range      = "2456-2458"
}

# Everything else from the internet is refused (explicit, ahead of Azure's default rules).
resource "azurerm_network_security_rule" "deny_internet_inbound" {
  name                        = "deny-internet-inbound"
  resource_group_name         = azurerm_resource_group.main.name
  network_security_group_name = azurerm_network_security_group.vm.name
  priority                    = 4000
  direction                   = "Inbound"
  access                      = "Deny"
  protocol                    = "*"
  source_address_prefix       = "Internet"
  source_port_range           = "*"
  destination_address_prefix  = "*"
  destination_port_range      = "*"
}

# SSH only from the admin CIDRs, and only when some are given (closed by default).
resource "azurerm_network_security_rule" "admin_ssh" {
  count                       = length(var.admin_ssh_cidrs) > 0 ? 1 : 0
  name                        = "allow-admin-ssh"
  resource_group_name         = azurerm_resource_group.main.name
  network_security_group_name = azurerm_network_security_group.vm.name
  priority                    = 110
  direction                   = "Inbound"
  access                      = "Allow"
  protocol                    = "Tcp"
  source_address_prefixes     = var.admin_ssh_cidrs
  source_port_range           = "*"
  destination_address_prefix  = "*"
  destination_port_range      = "22"
}

resource "azurerm_subnet_network_security_group_association" "vm" {
  subnet_id                 = azurerm_subnet.vm.id
  network_security_group_id = azurerm_network_security_group.vm.id
}
