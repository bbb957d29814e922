/** Every command, in the order of the global usage listing (docs/cli-contract.md §1.7). */
import { check } from "./check.ts";
import type { CommandDef } from "./command.ts";
import { container, containers, createContainer, getContainerDir, getContainerRunDir } from "./containers.ts";
import { applyDiff, changes, diff, diffSize } from "./content.ts";
import { copy } from "./copy.ts";
import { dataCommands } from "./data.ts";
import { deleteAny, deleteContainer, deleteImage, deleteLayer, exists } from "./delete.ts";
import { createImage, image, images, imagesByDigest } from "./images.ts";
import { createLayer, importLayer, layer, layers } from "./layers.ts";
import { mount, mounted, unmount } from "./mount.ts";
import { containerParentOwners, layerParentOwners } from "./parent-owners.ts";
import { addNames, getNames, metadata, setMetadata, setNames } from "./names.ts";
import { shutdown, status, version, wipe } from "./store-commands.ts";
import { login, logout } from "./registry.ts";
import { pull, push } from "./transfer.ts";

const [listContainerData, getContainerData, getContainerDataSize, getContainerDataDigest, setContainerData] = dataCommands("container");
const [listImageData, getImageData, getImageDataSize, getImageDataDigest, setImageData] = dataCommands("image");
const [listLayerData, getLayerData, setLayerData] = dataCommands("layer");

export const COMMANDS: CommandDef[] = [
  container,
  listContainerData!,
  getContainerData!,
  getContainerDataSize!,
  getContainerDataDigest!,
  setContainerData!,
  getContainerDir,
  getContainerRunDir,
  containerParentOwners,
  containers,
  copy,
  createLayer,
  importLayer,
  createImage,
  createContainer,
  deleteAny,
  deleteLayer,
  deleteImage,
  deleteContainer,
  changes,
  diffSize,
  diff,
  applyDiff,
  exists,
  image,
  listImageData!,
  getImageData!,
  getImageDataSize!,
  getImageDataDigest!,
  setImageData!,
  images,
  imagesByDigest,
  layer,
  layerParentOwners,
  listLayerData!,
  getLayerData!,
  setLayerData!,
  layers,
  metadata,
  setMetadata,
  mount,
  unmount,
  mounted,
  login,
  logout,
  pull,
  push,
  getNames,
  addNames,
  setNames,
  shutdown,
  status,
  version,
  wipe,
  check,
];
