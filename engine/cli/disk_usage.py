"""`system df` as the docker CLI prints it (cli/command/formatter/disk_usage.go): a summary row per
kind (Images, Containers, Local Volumes, Build Cache) or, with -v, each image, container, volume and
build cache record of the same usage under its own table; `--format` over the same contexts.

The invariant: what `docker system df [-v] [--format ...]` prints against the service (whose
/system/df is the same engine.api.system.disk_usage) is what this prints, byte for byte, except the
times that pass between the two. Sizes are go-units', as docker's formatter picks them: HumanSize (4
digits) for the totals, a volume's size and an image's shared and unique sizes,
HumanSizeWithPrecision (3) for an image's and a container's own size.
"""

from __future__ import annotations

import sys
import time

from engine.cli.formatters import (
    CONTAINER_HEADERS,
    IMAGE_HEADERS,
    VOLUME_HEADERS,
    HeaderContext,
    OmitEmptyStruct,
    Row,
    go_time,
)
from engine.cli.output import render_format, render_template
from engine.util.units import go_human_size, human_duration, human_size

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from engine.api.system import ContainerUsage, DiskUsage, ImageUsage, VolumeUsage

# disk_usage.go's default formats
SUMMARY_TABLE = "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}"
IMAGE_TABLE = ("table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}\t{{.SharedSize}}\t"
               "{{.UniqueSize}}\t{{.Containers}}")
CONTAINER_TABLE = ("table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.LocalVolumes}}\t{{.Size}}\t{{.RunningFor}}\t"
                   "{{.Status}}\t{{.Names}}")
VOLUME_TABLE = "table {{.Name}}\t{{.Links}}\t{{.Size}}"
BUILD_CACHE_TABLE = ("table {{.ID}}\t{{.CacheType}}\t{{.Size}}\t{{.CreatedSince}}\t{{.LastUsedSince}}\t"
                     "{{.UsageCount}}\t{{.Shared}}")

SUMMARY_HEADERS = HeaderContext({"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE", "Size": "SIZE",
                                 "Reclaimable": "RECLAIMABLE"}, elem="string")
BUILD_CACHE_HEADERS = HeaderContext({
    "ID": "CACHE ID", "CacheType": "CACHE TYPE", "Size": "SIZE", "CreatedSince": "CREATED",
    "LastUsedSince": "LAST USED", "UsageCount": "USAGE", "Shared": "SHARED",
}, elem="string")

ACTIVE_STATES = ("running", "paused", "restarting")  # diskUsageContainersContext.isActive


def print_disk_usage(usage: DiskUsage, template: str, verbose: bool) -> None:
    """Write `system df`'s output for `template` ("" is docker's table)."""
    template = template.strip() if template.strip() in ("", "table", "json") else template
    if not verbose:
        text = {"": SUMMARY_TABLE, "table": SUMMARY_TABLE, "json": "{{json .}}"}.get(template, template)
        sys.stdout.write(render_format(text, summary_rows(usage), SUMMARY_HEADERS))
        return
    now = time.time()
    images = [image_row(i, now, trunc=template in ("", "table")) for i in usage.images]
    containers = [df_container_row(c, now, trunc=template in ("", "table")) for c in usage.containers]
    volumes = [volume_row(v) for v in usage.volumes]
    if template in ("", "table"):
        sys.stdout.write("Images space usage:\n\n" + render_format(IMAGE_TABLE, images, IMAGE_HEADERS))
        sys.stdout.write("\nContainers space usage:\n\n" + render_format(CONTAINER_TABLE, containers, CONTAINER_HEADERS))
        sys.stdout.write("\nLocal Volumes space usage:\n\n" + render_format(VOLUME_TABLE, volumes, VOLUME_HEADERS))
        sys.stdout.write("\nBuild cache usage: 0B\n\n" + render_format(BUILD_CACHE_TABLE, [], BUILD_CACHE_HEADERS))
        return
    # any other format runs once over docker's diskUsageContext (json: `{{json .}}` of it)
    text = "{{json .}}" if template == "json" else template
    if text.startswith("table"):
        text = text[len("table"):]
    text = text.strip(" ").replace("\\t", "\t").replace("\\n", "\n")
    fields = {"Images": images, "Containers": containers, "Volumes": volumes, "BuildCache": []}
    sys.stdout.write(render_template(text, OmitEmptyStruct("*formatter.diskUsageContext", fields, fields)))


def _reclaimable(reclaimable: int, total: int) -> str:
    """`SIZE (PERCENT%)`, the percentage Go's integer division of it, only when there is a total."""
    if total > 0:
        return f"{go_human_size(reclaimable)} ({reclaimable * 100 // total}%)"
    return go_human_size(reclaimable)


def summary_rows(usage: DiskUsage) -> list[Row]:
    """The four kinds' contexts (diskUsageImagesContext ... diskUsageBuilderContext)."""
    used_by_images = sum(i.record.size - i.shared_size for i in usage.images if i.containers)
    written = sum(c.size_rw for c in usage.containers)
    idle_written = sum(c.size_rw for c in usage.containers if c.record.status not in ACTIVE_STATES)
    volume_size = sum(v.size for v in usage.volumes)  # always measured here: no Go -1 ("not computed")
    unused_volume_size = sum(v.size for v in usage.volumes if not v.ref_count)
    kinds = [
        ("diskUsageImagesContext", "Images", len(usage.images), sum(1 for i in usage.images if i.containers),
         go_human_size(usage.layers_size), _reclaimable(usage.layers_size - used_by_images, usage.layers_size)),
        ("diskUsageContainersContext", "Containers", len(usage.containers),
         sum(1 for c in usage.containers if c.record.status in ACTIVE_STATES), go_human_size(written),
         _reclaimable(idle_written, written)),
        ("diskUsageVolumesContext", "Local Volumes", len(usage.volumes), sum(1 for v in usage.volumes if v.ref_count),
         go_human_size(volume_size), _reclaimable(unused_volume_size, volume_size)),
        ("diskUsageBuilderContext", "Build Cache", 0, 0, go_human_size(0), go_human_size(0)),  # no BuildKit cache
    ]
    return [Row(f"*formatter.{go_type}", {"Type": kind, "TotalCount": str(total), "Active": str(active),
                                          "Size": size, "Reclaimable": reclaimable})
            for go_type, kind, total, active, size, reclaimable in kinds]


def image_row(usage: ImageUsage, now: float, *, trunc: bool) -> Row:
    """imageContext of one image as df lists it: its first tag only, <none> when it has none."""
    from engine.cli.formatters import image_row as image_context
    from engine.image.store import _repo_of
    from engine.util.timefmt import parse_rfc3339

    record = usage.record
    repo = tag = "<none>"
    if record.repo_tags:
        repo = _repo_of(record.repo_tags[0])
        tag = record.repo_tags[0][len(repo) + 1:]
    created = parse_rfc3339(record.created)
    fields = {
        "Containers": str(usage.containers),
        "CreatedAt": go_time(int(created)) if created is not None else "",  # time.Unix(Created, 0)
        "CreatedSince": human_duration(now - created) + " ago" if created is not None else "N/A",
        "Digest": "",
        "ID": record.short_id if trunc else record.id,
        "Repository": repo,
        "SharedSize": go_human_size(usage.shared_size),
        "Size": human_size(record.size),
        "Tag": tag,
        "UniqueSize": go_human_size(record.size - usage.shared_size),
        "VirtualSize": go_human_size(record.size),
    }
    labels = (record.config.get("config") or {}).get("Labels") if isinstance(record.config, dict) else None
    return image_context(fields, labels or {})


def df_container_row(usage: ContainerUsage, now: float, *, trunc: bool) -> Row:
    """ps's ContainerContext of one container, its Size without the virtual part (df sets
    SizeRootFs to 0 before it prints)."""
    from engine.cli.container_list import listed_row

    return listed_row(usage.record, now, trunc=trunc, names=list(usage.names), size=lambda: human_size(usage.size_rw))


def volume_row(usage: VolumeUsage) -> Row:
    """volumeContext with the usage df adds: its links (the containers that mount it) and size."""
    from engine.cli.formatters import volume_row as listed_volume

    return listed_volume(usage.volume, links=str(usage.ref_count), size=go_human_size(usage.size))
