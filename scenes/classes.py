"""The semantic class table shared by every store (ids are stable: append, never reorder)."""

CLASSES = (
    "unlabeled", "sky", "road", "sidewalk", "building", "vegetation", "terrain", "pole",
    "traffic_sign", "traffic_light", "fence", "lane_marking", "street_furniture",
    "car", "van", "truck", "bus", "pedestrian",
)
CLASS_IDS = {name: i for i, name in enumerate(CLASSES)}

# Which class each asset kind belongs to.
KIND_CLASS = {
    "car": "car", "van": "van", "truck": "truck", "bus": "bus", "pedestrian": "pedestrian",
    "building": "building", "tree": "vegetation", "street_light": "pole",
    "traffic_sign": "traffic_sign", "traffic_light": "traffic_light", "fence": "fence",
    "railing": "fence", "bench": "street_furniture", "bollard": "street_furniture",
    "trash_bin": "street_furniture", "road_surface": "road", "sidewalk": "sidewalk",
    "lane_markings": "lane_marking", "crosswalk": "lane_marking", "ground": "terrain",
    "cutout": "pedestrian",
}
