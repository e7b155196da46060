"""The catalogue of every pretrained file warpinv can use, and lookup by name.

:data:`REGISTRY` maps a name to its :class:`~warpinv.weights.specs.WeightSpec`: sources, checksums,
sizes, licences and users. Nothing here touches the disk or the network.

Provenance of every URL and checksum: ``metrics.md`` §4, §7.4, §8, §9.2, §12, ``eg3d.md`` §0,
``methods.md`` §0-§7 of the project's reference notes, plus the official repositories' READMEs where
an entry says so. Checksums are never invented: ``None`` means nobody published one.

>>> get_spec("model_ir_se50.pth").name  # a registered file name works too
'arcface-ir-se50'
>>> get_spec("arcface-ir-se5")
Traceback (most recent call last):
    ...
warpinv.weights.catalogue.UnknownWeightError: unknown weight 'arcface-ir-se5'. Did you mean arcface-ir-se50? ...
"""
from __future__ import annotations

import difflib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from warpinv.weights.specs import PublishedChecksum, WeightSpec

__all__ = ["REGISTRY", "UnknownWeightError", "get_spec", "register", "registered"]


class UnknownWeightError(KeyError):
    """No registry entry has this name (or file name)."""

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return str(self.args[0]) if self.args else ""


_EG3D_LICENCE = "NVIDIA Source Code License for EG3D (non-commercial research use only)"
_NGC = "https://api.ngc.nvidia.com/v2/models/org/nvidia/team/research/eg3d/1/files?redirect=true&path={}"
_NGC_PAGE = "https://catalog.ngc.nvidia.com/orgs/nvidia/teams/research/models/eg3d"
_DRIVE_HOWTO = (
    "Open {link} in a browser (or `gdown https://drive.google.com/uc?id={gdown_id} -O {filename}`; "
    "gdown is not a warpinv dependency) "
    "and place {filename} in $WARPINV_WEIGHTS, or pass its path explicitly."
)


def _drive(link: str, gdown_id: str, filename: str, extra: str = "") -> str:
    text = _DRIVE_HOWTO.format(link=link, gdown_id=gdown_id, filename=filename)
    return f"{text} {extra}".strip()


def _eg3d(file: str, used_by: Sequence[str], description: str, verbatim: bool) -> WeightSpec:
    how = ("this exact URL appears in downstream READMEs (In-N-Out, GOAE and others)" if verbatim else
           "same NGC file-path scheme as the ffhq512-128 / ffhqrebalanced512-128 URLs that downstream READMEs give")
    return WeightSpec(
        name=f"eg3d-{file.removesuffix('.pkl')}",
        filename=file,
        urls=(_NGC.format(file),),
        licence=_EG3D_LICENCE,
        used_by=tuple(used_by),
        description=f"Official EG3D network pickle: {description}",
        provenance=f"NGC nvidia/research/eg3d version 1 ({_NGC_PAGE}); eg3d.md §0; {how}. "
                   "No size or checksum published. Convert once with `warpinv weights convert`.",
    )


_BACKBONE = "warpinv.backbone (preset {})"
_EG3D_SPECS = [
    _eg3d("ffhq512-128.pkl", [_BACKBONE.format("ffhq512-128"), "methods: HFGI3D, TriPlaneNet, PTI (EG3D ports)"],
          "FFHQ 512px, neural rendering 128", True),
    _eg3d("ffhqrebalanced512-128.pkl",
          [_BACKBONE.format("ffhqrebalanced512-128"), "methods: In-N-Out, GOAE, Ko et al., WarpGAN (encoder init)"],
          "FFHQ with rebalanced poses, 512px, neural rendering 128", True),
    _eg3d("ffhqrebalanced512-64.pkl", [_BACKBONE.format("ffhqrebalanced512-64")],
          "FFHQ with rebalanced poses, 512px, neural rendering 64", False),
    _eg3d("afhqcats512-128.pkl", [_BACKBONE.format("afhqcats512-128")], "AFHQv2 cats, 512px, neural rendering 128",
          False),
    _eg3d("shapenetcars128-64.pkl", [_BACKBONE.format("shapenetcars128-64")],
          "ShapeNet cars, 128px, neural rendering 64", False),
]

_FACE_SPECS = [
    WeightSpec(
        name="arcface-ir-se50",
        filename="model_ir_se50.pth",
        urls=("https://drive.google.com/file/d/1KW7bjndL3QG3sxBbZxreGHigcCCpsDgn/view",
              "https://drive.google.com/uc?id=1yrqdkBoZo3m0JEL1rmrSRvCrmn4-NHxj"),
        checksum=PublishedChecksum("md5", "ccee24aae1d36888fc42390ae39d1b36",
                                   "E3DGE download_models.py (NIRVANALAN/CVPR23-E3DGE @ 7666d5b)"),
        size=175_367_323,
        licence="MIT (TreB1eN/InsightFace_Pytorch, the origin of the weights); no separate licence stated for the file",
        used_by=("metrics: id_arcface (ArcFace IR-SE50 identity, warpinv.metrics.irse50)",
                 "methods: PTI / HFGI3D / TriPlaneNet / WarpGAN ID loss"),
        manual_instructions=_drive(
            "https://drive.google.com/file/d/1KW7bjndL3QG3sxBbZxreGHigcCCpsDgn/view (pSp README)",
            "1KW7bjndL3QG3sxBbZxreGHigcCCpsDgn", "model_ir_se50.pth",
            "Mirror: https://drive.google.com/uc?id=1yrqdkBoZo3m0JEL1rmrSRvCrmn4-NHxj (E3DGE). "
            "Original: TreB1eN/InsightFace_Pytorch README, 'IR-SE50 @ Onedrive / BaiduNetdisk'."),
        description="ArcFace IR-SE50 backbone (bare state_dict, 397 keys), pSp/e4e/PTI IDLoss",
        provenance="metrics.md §7.4 and §12: pSp README link; E3DGE mirror with file_size and md5. "
                   "No sha256 published.",
    ),
    WeightSpec(
        name="curricularface-ir101",
        filename="CurricularFace_Backbone.pth",
        urls=("https://drive.google.com/file/d/1f4IwVa2-Bn9vWLwB-bUwm53U_MlvinAj/view",),
        licence="not stated in the references (HuangYG123/CurricularFace); check upstream before redistribution",
        used_by=("metrics: id_curricular_mtcnn (TriPlaneNet / pSp calc_id_loss_parallel protocol)",),
        manual_instructions=_drive("https://drive.google.com/file/d/1f4IwVa2-Bn9vWLwB-bUwm53U_MlvinAj/view",
                                   "1f4IwVa2-Bn9vWLwB-bUwm53U_MlvinAj", "CurricularFace_Backbone.pth"),
        description="CurricularFace IR-101 backbone (bare state_dict)",
        provenance="metrics.md §7.3, §7.4, §12 (TriPlaneNet / pSp README). No checksum published.",
    ),
    WeightSpec(
        name="mtcnn-treb1en-npy",
        filename="mtcnn.tar.gz",
        urls=("https://drive.google.com/file/d/1tJ7ih-wbCO6zc3JhI_1ZGjmwXKKaPlja/view",),
        licence="MIT (TreB1eN/InsightFace_Pytorch)",
        used_by=("metrics: id_curricular_mtcnn alignment (TreB1eN-style MTCNN, pnet/rnet/onet.npy)",),
        manual_instructions=_drive("https://drive.google.com/file/d/1tJ7ih-wbCO6zc3JhI_1ZGjmwXKKaPlja/view",
                                   "1tJ7ih-wbCO6zc3JhI_1ZGjmwXKKaPlja", "mtcnn.tar.gz",
                                   "Unpack it (tar -xzf mtcnn.tar.gz) to get pnet.npy, rnet.npy, onet.npy."),
        description="TreB1eN MTCNN weights as .npy files, in a tar.gz",
        provenance="metrics.md §7.3, §7.4, §12; archive name as in TriPlaneNet scripts/install_deps.sh. "
                   "No checksum published.",
    ),
    WeightSpec(
        name="facenet-vggface2",
        filename="20180402-114759-vggface2.pt",
        urls=("https://github.com/timesler/facenet-pytorch/releases/download/v2.2.9/20180402-114759-vggface2.pt",),
        licence="MIT (timesler/facenet-pytorch release asset)",
        used_by=("metrics: id_facenet (optional FaceNet identity, not paper-matching)",),
        hub_filename="20180402-114759-vggface2.pt",
        cache="torch_home",
        description="FaceNet InceptionResnetV1 trained on VGGFace2 (facenet-pytorch pretrained='vggface2')",
        provenance="metrics.md §8 and §12 (facenet-pytorch 2.5.3 inception_resnet_v1.py). No checksum published. "
                   "facenet-pytorch caches it in $TORCH_HOME/checkpoints (not hub/checkpoints).",
    ),
    WeightSpec(
        name="facenet-casia-webface",
        filename="20180408-102900-casia-webface.pt",
        urls=("https://github.com/timesler/facenet-pytorch/releases/download/v2.2.9/20180408-102900-casia-webface.pt",),
        licence="MIT (timesler/facenet-pytorch release asset)",
        used_by=("metrics: id_facenet with pretrained='casia-webface' (optional)",),
        hub_filename="20180408-102900-casia-webface.pt",
        cache="torch_home",
        description="FaceNet InceptionResnetV1 trained on CASIA-WebFace",
        provenance="metrics.md §8 (facenet-pytorch 2.5.3 inception_resnet_v1.py). No checksum published.",
    ),
]

_MTCNN_PACKAGED = {  # sha256 computed from the facenet-pytorch 2.5.3 wheel; prefixes as in metrics.md §8
    "pnet": (28_570, "a2a71925e0b9996a42f63e47efc1ca19043e69558b5c523b978d611dfae49c8f"),
    "rnet": (403_147, "bbb937de72efc9ef83b186c49f5f558467a1d7e3453a8ece0d71a886633f6a86"),
    "onet": (1_559_269, "165bfbe42940416ccfb977545cf0e976d5bf321f67083ae2aaaa5c764280118d"),
}
_LPIPS_PACKAGED = {  # sha256 and size computed from the lpips 0.1.4 wheel; prefixes as in metrics.md §4
    "alex": (6_009, "df73285e35b22355a2df87cdb6b70b343713b667eddbda73e1977e0c860835c0"),
    "vgg": (7_289, "a78928a0af1e5f0fcb1f3b9e8f8c3a2a5a3de244d830ad5c1feddc79b8432868"),
    "squeeze": (10_811, "4a5350f23600cb79923ce65bb07cbf57dca461329894153e05a1346bd531cf76"),
}
_LPIPS_USERS = {
    "alex": ("metrics: lpips_alex (reconstruction LPIPS)", "methods: PTI / HFGI3D LPIPS(alex) loss"),
    "vgg": ("metrics: lpips_vgg (IBRNet consistency variant)", "methods: In-N-Out SR stage LPIPS(vgg)"),
    "squeeze": ("metrics: lpips with net='squeeze' (optional)",),
}


def _mtcnn(net: str) -> WeightSpec:
    size, sha = _MTCNN_PACKAGED[net]
    return WeightSpec(
        name=f"mtcnn-{net}",
        filename=f"{net}.pt",
        sha256=sha,
        size=size,
        packaged_in=("facenet_pytorch", f"data/{net}.pt"),
        licence="MIT (facenet-pytorch wheel)",
        used_by=("metrics: face detection / 5-landmark alignment (warpinv MTCNN port)",
                 "data: landmark-based camera estimation"),
        description=f"MTCNN {net.upper()} state_dict shipped inside facenet-pytorch",
        provenance="lightning-and-data.md §4.2, metrics.md §8 [measured]; full sha256 computed from the installed "
                   "facenet-pytorch 2.5.3 wheel (matches the prefixes/suffixes in metrics.md). Not published upstream.",
    )


def _lpips_head(net: str) -> WeightSpec:
    size, sha = _LPIPS_PACKAGED[net]
    return WeightSpec(
        name=f"lpips-{net}-v0.1",
        filename=f"{net}.pth",
        sha256=sha,
        size=size,
        packaged_in=("lpips", f"weights/v0.1/{net}.pth"),
        licence="BSD-2-Clause (richzhang/PerceptualSimilarity, shipped in the lpips wheel)",
        used_by=_LPIPS_USERS[net],
        description=f"LPIPS v0.1 linear heads for the {net} trunk, shipped inside the lpips wheel",
        provenance="metrics.md §4 [measured], lightning-and-data.md §4.2; full sha256 and size computed from the "
                   "installed lpips 0.1.4 wheel (matches metrics.md). Not published upstream.",
    )


def _trunk(arch: str, filename: str, used_by: Sequence[str]) -> WeightSpec:
    prefix = filename.rsplit("-", 1)[1].split(".")[0]
    return WeightSpec(
        name=f"torchvision-{arch}",
        filename=filename,
        urls=(f"https://download.pytorch.org/models/{filename}",),
        checksum=PublishedChecksum("sha256-prefix", prefix, "torchvision file name (torch.hub check_hash convention)"),
        hub_filename=filename,
        licence="BSD-3-Clause (torchvision); trained on ImageNet, whose terms restrict use to non-commercial research",
        used_by=tuple(used_by),
        description=f"torchvision ImageNet {arch} weights: the LPIPS trunk",
        provenance="metrics.md §4 and §12, lightning-and-data.md §4.1. "
                   "Only the sha256 prefix in the name is published.",
    )


_LPIPS_SPECS = [
    _trunk("alexnet", "alexnet-owt-7be5be79.pth", ["metrics: lpips_alex trunk", "methods: PTI / HFGI3D LPIPS loss"]),
    _trunk("vgg16", "vgg16-397923af.pth", ["metrics: lpips_vgg trunk", "methods: Ko et al. VGG16 feature loss"]),
    *(_lpips_head(net) for net in _LPIPS_PACKAGED),
    *(_mtcnn(net) for net in _MTCNN_PACKAGED),
]

_OTHER_SPECS = [
    WeightSpec(
        name="ibrnet",
        filename="model_255000.pth",
        urls=("https://drive.google.com/uc?id=1wNkZkVQGx7rFksnX7uVX3NazrbjqaIgU",),
        licence="Apache-2.0 (googleinterns/IBRNet)",
        used_by=("metrics: ibrnet_consistency (HFGI3D Tab. 3 multi-view consistency)",),
        manual_instructions=(
            "The file is inside pretrained_model.zip: "
            "`gdown https://drive.google.com/uc?id=1wNkZkVQGx7rFksnX7uVX3NazrbjqaIgU` "
            "(IBRNet README; gdown is not a warpinv dependency), unzip it, and place model_255000.pth in "
            "$WARPINV_WEIGHTS, or pass its path explicitly."),
        description="IBRNet generalisable model (feature_net, net_coarse, net_fine + optimiser state)",
        provenance="metrics.md §9.2 and §12. No size or checksum published (about 108 MB expected, unconfirmed).",
    ),
    WeightSpec(
        name="deep3dfacerecon-epoch20",
        filename="epoch_20.pth",
        urls=("https://drive.google.com/file/d/1zawY7jYDJlUGnSAXn1pgIHgIvJpiSmj5/view",),
        licence="MIT (sicxu/Deep3DFaceRecon_pytorch code); the BFM09 face model it needs requires registration",
        used_by=("data: EG3D in-the-wild camera extraction (optional; warpinv's 5-landmark estimator needs no weights)",
                 "metrics: pose accuracy (optional)"),
        manual_instructions=_drive(
            "https://drive.google.com/file/d/1zawY7jYDJlUGnSAXn1pgIHgIvJpiSmj5/view (HFGI3D README)",
            "1zawY7jYDJlUGnSAXn1pgIHgIvJpiSmj5", "epoch_20.pth",
            "BFM09 must be requested separately (faces.dmi.unibas.ch)."),
        description="Deep3DFaceRecon_pytorch face reconstruction network",
        provenance="metrics.md §12, lightning-and-data.md §3.1. No checksum published.",
    ),
    WeightSpec(
        name="pti-vgg16-torchscript",
        filename="vgg16.pt",
        urls=("https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/vgg16.pt",),
        licence="no licence stated with the file (NVIDIA stylegan2-ada-pytorch metrics asset)",
        used_by=("methods: PTI pivot projection (official LPIPS-VGG16 feature distance)",),
        description="NVIDIA's TorchScript VGG16 LPIPS feature extractor used by the StyleGAN2-ADA / PTI projector",
        provenance="methods.md §1.1 names the file; URL from the stylegan2-ada-pytorch metrics downloads "
                   "(as used in downstream READMEs). No checksum published.",
    ),
]

_GOAE_HOWTO = (
    "GOAE publishes its checkpoints on Google Drive, linked from the README of github.com/jiangyzy/GOAE; "
    "no direct URL is recorded in the references. Download {filename} from there and place it in "
    "$WARPINV_WEIGHTS, or pass its path explicitly."
)
_IN_N_OUT_CHECKPOINT = "https://drive.google.com/file/d/18WzDoRXtstpG_IbUmbLURblr8YX3gvR-/view"
_WARPGAN_DRIVE = "https://drive.google.com/drive/folders/1G9PeyrCS1gTyF3C957l6Key__t44aiIE"
_WARPGAN_HOWTO = (
    f"WarpGAN's README (github.com/Huang-KT/WarpGAN @ 1bb86bf, 'Checkpoints') links one Google Drive folder, "
    f"{_WARPGAN_DRIVE}, holding every model it needs; download {{filename}} from it (released path {{released}}) and "
    "place it in $WARPINV_WEIGHTS, or pass its path explicitly."
)
_WARPGAN_LICENCE = "no LICENSE file in Huang-KT/WarpGAN at 1bb86bf (all rights reserved by default)"
_TRIPLANENET_HOWTO = (
    "`gdown https://drive.google.com/uc?id={gdown_id} -O {filename}` (TriPlaneNet README and scripts/install_deps.sh; "
    "gdown is not a warpinv dependency), then place {filename} in $WARPINV_WEIGHTS, or pass its path explicitly."
)

_ENCODER_SPECS = [
    WeightSpec(
        name="goae-encoder-ffhq",
        filename="encoder_FFHQ.pt",
        licence="no LICENSE file in jiangyzy/GOAE (all rights reserved by default)",
        used_by=("methods: GOAE (Swin-V2 W+ encoder)",
                 "methods: WarpGAN (same architecture: warpinv.methods.warpgan.goae.load_goae_state reads it)"),
        manual_instructions=_GOAE_HOWTO.format(filename="encoder_FFHQ.pt"),
        description="GOAE Swin-Transformer-V2 encoder, FFHQ, on ffhqrebalanced512-128",
        provenance="methods.md §5 'Runtime and checkpoints' (Drive). No URL or checksum in the references.",
    ),
    WeightSpec(
        name="goae-afa-ffhq",
        filename="afa_FFHQ.pt",
        licence="no LICENSE file in jiangyzy/GOAE (all rights reserved by default)",
        used_by=("methods: GOAE (AFA F-space refinement, 32x32 level)",),
        manual_instructions=_GOAE_HOWTO.format(filename="afa_FFHQ.pt"),
        description="GOAE adaptive feature alignment (AFA) network, FFHQ",
        provenance="methods.md §5 'Runtime and checkpoints' (Drive). No URL or checksum in the references.",
    ),
    WeightSpec(
        name="warpgan-goae-init",
        filename="goae_FFHQ_ori.pt",
        urls=(_WARPGAN_DRIVE,),
        licence="no LICENSE file in Huang-KT/WarpGAN at 1bb86bf, nor in jiangyzy/GOAE (all rights reserved by default)",
        used_by=("methods: WarpGAN (initialisation of its GOAE-Swin encoder)",),
        manual_instructions=_WARPGAN_HOWTO.format(filename="goae_FFHQ_ori.pt",
                                                  released="pretrained_models/inversion/goae_FFHQ_ori.pt"),
        description="GOAE FFHQ encoder weights as WarpGAN loads them to initialise its encoder",
        provenance="methods.md §4.1 names the file; Drive folder from the official WarpGAN README. No checksum.",
    ),
    WeightSpec(
        name="eg3d-lpff-var2-128",
        filename="var2-128.pkl",
        urls=(_WARPGAN_DRIVE,),
        licence=f"{_EG3D_LICENCE} for the EG3D network; LPFF's own terms not stated in the references",
        used_by=("methods: WarpGAN (its backbone: EG3D trained on FFHQ+LPFF, rebalanced)",),
        manual_instructions=(
            "An EG3D pickle trained by the LPFF project (github.com/oneThousand1000/LPFF-dataset) on FFHQ+LPFF; "
            + _WARPGAN_HOWTO.format(filename="var2-128.pkl", released="pretrained_models/eg3d/ffhq_lpff/var2-128.pkl")
            + " It is a different backbone: numbers on it are not comparable with the stock FFHQ EG3D. WarpGAN builds "
              "it with fixed_planes=True: convert it with `warpinv weights convert var2-128.pkl --fixed-planes`."),
        description="LPFF-trained EG3D ('plus_r', rebalanced), WarpGAN's generator",
        provenance="methods.md §0 and §4.1 name the file. No URL of its own or checksum in the references.",
    ),
    WeightSpec(
        name="warpgan-latent-avg",
        filename="latent_avg_plus_rebalanced.pt",
        urls=(_WARPGAN_DRIVE,),
        licence=_WARPGAN_LICENCE,
        used_by=("methods: WarpGAN (w_avg added to the encoder's W+; warpinv can recompute it from the generator)",),
        manual_instructions=_WARPGAN_HOWTO.format(
            filename="latent_avg_plus_rebalanced.pt",
            released="pretrained_models/eg3d/ffhq_lpff/latent_avg_plus_rebalanced.pt"),
        description="mean w of var2-128.pkl over 10,000 z (RandomState(123), frontal camera), a [1, 512] torch tensor",
        provenance="WarpGAN configs/paths_config.py and scripts/avg_latent.py. No checksum published.",
    ),
    WeightSpec(
        name="warpgan-encoder",
        filename="gan_encoder.pt",
        urls=(_WARPGAN_DRIVE,),
        licence=_WARPGAN_LICENCE,
        used_by=("methods: WarpGAN (retrained GOAE Swin-V2 W+ encoder; checkpoint key psp_state_dict)",),
        manual_instructions=_WARPGAN_HOWTO.format(filename="gan_encoder.pt",
                                                  released="pretrained_models/inversion/gan_encoder.pt"),
        description="WarpGAN's W+ encoder (GOAE Swin-V2, retrained on FFHQ+LPFF for var2-128.pkl)",
        provenance="WarpGAN configs/infer.yaml (gan.checkpoint_path, state_dict_key); layout in "
                   "../shared/fixtures/warpgan/goae_encoder_manifest.json. No checksum published.",
    ),
    WeightSpec(
        name="warpgan-svinet",
        filename="inpaintor.pt",
        urls=(_WARPGAN_DRIVE,),
        licence=_WARPGAN_LICENCE,
        used_by=("methods: WarpGAN (SVINet inpainting network; checkpoint key inpaintor_state_dict)",),
        manual_instructions=_WARPGAN_HOWTO.format(filename="inpaintor.pt",
                                                  released="pretrained_models/inpaintor/inpaintor.pt"),
        description="WarpGAN's SVINet (style-modulated LaMa FFC-ResNet inpainting generator)",
        provenance="WarpGAN configs/infer.yaml (ckpt_inpaintor); layout in "
                   "../shared/fixtures/warpgan/svinet_manifest.json. No checksum published.",
    ),
    WeightSpec(
        name="in-n-out-rednose2",
        filename="rednose2_triplanes.pt",
        urls=(_IN_N_OUT_CHECKPOINT,),
        licence="CC BY-NC 4.0 (the In-N-Out README's licence section covers 'the model checkpoints')",
        used_by=("methods: In-N-Out (the authors' released inversion, read by InNOutInversion.from_released)",),
        manual_instructions=(
            f"Open {_IN_N_OUT_CHECKPOINT} in a browser (the In-N-Out README's 'pre-trained checkpoint'; gdown is not "
            "a warpinv dependency). Its commands read the file as ckpts/rednose2/triplanes.pt: save that file as "
            "rednose2_triplanes.pt in $WARPINV_WEIGHTS, or pass its path to InNOutInversion.from_released with "
            "the frame's camera. It needs ffhqrebalanced512-128.pkl (eg3d-ffhqrebalanced512-128) and the authors' "
            "rednose2 frames (their preprocessed data, same README) to compare against."),
        description="In-N-Out's released inversion of one video ('rednose2': W+ per frame, phi, the OOD tri-plane and "
                    "the tuned SR), not a general model; the layout of warpinv.methods.in_n_out.released",
        provenance="github.com/Twizwei/in-n-out README @ 0bbfc7d ('To test our code, we provide a pre-trained "
                   "checkpoint'; scripts/run_test_styleclip.sh rednose2 ... ckpts/rednose2); methods.md §3.2. "
                   "No size or checksum published.",
    ),
    WeightSpec(
        name="triplanenet-v1",
        filename="triplanenet_final.pth",
        urls=("https://drive.google.com/file/d/17pzNC00BOFCu0oCqbCybfAiaZF7iwNUU/view",),
        licence="MIT (anantarb/triplanenet)",
        used_by=("methods: TriPlaneNet v1 (pSp W+ encoder + tri-plane offset encoder)",),
        manual_instructions=_TRIPLANENET_HOWTO.format(gdown_id="17pzNC00BOFCu0oCqbCybfAiaZF7iwNUU",
                                                      filename="triplanenet_final.pth"),
        description="TriPlaneNet v1, trained on FFHQ + synthesised EG3D samples",
        provenance="methods.md §7 (v1/v2 on Drive); link and file name from the official TriPlaneNet README and "
                   "scripts/install_deps.sh. No checksum published.",
    ),
    WeightSpec(
        name="triplanenet-v2",
        filename="triplanenet_v2_final.pth",
        urls=("https://drive.google.com/file/d/1Q7hGZw97nTmRyJ-itVGRaFJn9KyjAuhn/view",),
        licence="MIT (anantarb/triplanenet)",
        used_by=("methods: TriPlaneNet v2",),
        manual_instructions=_TRIPLANENET_HOWTO.format(gdown_id="1Q7hGZw97nTmRyJ-itVGRaFJn9KyjAuhn",
                                                      filename="triplanenet_v2_final.pth"),
        description="TriPlaneNet v2, trained on FFHQ + synthesised EG3D samples",
        provenance="methods.md §7 (v1/v2 on Drive); link and file name from the official TriPlaneNet README and "
                   "scripts/install_deps.sh. No checksum published.",
    ),
]

#: Every known pretrained file, by name. A plain dict: tests may add entries with :func:`registered`.
REGISTRY: dict[str, WeightSpec] = {
    spec.name: spec for spec in [*_EG3D_SPECS, *_FACE_SPECS, *_LPIPS_SPECS, *_OTHER_SPECS, *_ENCODER_SPECS]
}


def get_spec(name: str) -> WeightSpec:
    """The entry called ``name`` (or whose ``filename`` is ``name``).

    Raises:
        UnknownWeightError: no such entry; the message suggests close names.
    """
    if name in REGISTRY:
        return REGISTRY[name]
    for spec in REGISTRY.values():
        if name in (spec.filename, spec.hub_filename):
            return spec
    close = difflib.get_close_matches(name, list(REGISTRY), n=3)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise UnknownWeightError(f"unknown weight {name!r}.{hint} Known: {', '.join(sorted(REGISTRY))}")


def register(spec: WeightSpec, *, replace: bool = False) -> None:
    """Add ``spec`` to :data:`REGISTRY` (``replace=True`` to overwrite an entry of the same name)."""
    if spec.name in REGISTRY and not replace:
        raise ValueError(f"weight {spec.name!r} is already registered")
    REGISTRY[spec.name] = spec


@contextmanager
def registered(*specs: WeightSpec) -> Iterator[None]:
    """Temporarily add (or shadow) entries, restoring the registry on exit. Meant for tests."""
    saved = {spec.name: REGISTRY.get(spec.name) for spec in specs}
    try:
        for spec in specs:
            REGISTRY[spec.name] = spec
        yield
    finally:
        for name, old in saved.items():
            if old is None:
                REGISTRY.pop(name, None)
            else:
                REGISTRY[name] = old
